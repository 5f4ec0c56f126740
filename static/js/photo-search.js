// Search by photo: drag and drop, a preview of the chosen photo, and a busy state.
(function () {
  const form = document.getElementById("photo-form");
  if (!form) return;
  const zone = document.getElementById("dropzone");
  const picker = document.getElementById("id_photo");
  const camera = document.getElementById("id_camera");
  const preview = document.getElementById("preview");
  const button = document.getElementById("search-button");
  const crop = document.getElementById("crop");
  const frame = document.getElementById("crop-frame");
  const cropImage = document.getElementById("crop-image");
  const cropBox = document.getElementById("crop-box");
  const boxInput = document.getElementById("id_box");
  const MIN_SIDE = 0.05; // the server refuses smaller boxes

  function show(file) {
    if (!file || !file.type.startsWith("image/")) return;
    preview.src = URL.createObjectURL(file);
    preview.hidden = false;
    zone.classList.add("has-photo");
    cropImage.src = preview.src;
    crop.hidden = false;
    setBox(null);
  }

  // The crop box travels as shares of the photo: left,top,right,bottom in 0..1.
  function setBox(box) {
    boxInput.value = box ? box.map((v) => v.toFixed(4)).join(",") : "";
    cropBox.hidden = !box;
    if (!box) return;
    cropBox.style.left = box[0] * 100 + "%";
    cropBox.style.top = box[1] * 100 + "%";
    cropBox.style.width = (box[2] - box[0]) * 100 + "%";
    cropBox.style.height = (box[3] - box[1]) * 100 + "%";
  }

  function point(event) {
    const rect = frame.getBoundingClientRect();
    const clamp = (v) => Math.min(1, Math.max(0, v));
    return [clamp((event.clientX - rect.left) / rect.width), clamp((event.clientY - rect.top) / rect.height)];
  }

  let anchor = null;
  frame.addEventListener("pointerdown", (event) => {
    event.preventDefault();
    frame.setPointerCapture(event.pointerId);
    anchor = point(event);
  });
  frame.addEventListener("pointermove", (event) => {
    if (!anchor) return;
    const [x, y] = point(event);
    setBox([Math.min(anchor[0], x), Math.min(anchor[1], y), Math.max(anchor[0], x), Math.max(anchor[1], y)]);
  });
  frame.addEventListener("pointerup", () => {
    anchor = null;
    const box = boxInput.value ? boxInput.value.split(",").map(Number) : null;
    if (box && (box[2] - box[0] < MIN_SIDE || box[3] - box[1] < MIN_SIDE)) setBox(null);
  });
  document.getElementById("crop-reset").addEventListener("click", () => setBox(null));

  picker.addEventListener("change", () => {
    if (camera) camera.value = "";
    show(picker.files[0]);
  });
  if (camera) {
    camera.addEventListener("change", () => {
      picker.value = "";
      show(camera.files[0]);
      form.requestSubmit();
    });
  }
  ["dragenter", "dragover"].forEach((name) =>
    zone.addEventListener(name, (event) => {
      event.preventDefault();
      zone.classList.add("dragging");
    })
  );
  ["dragleave", "drop"].forEach((name) =>
    zone.addEventListener(name, () => zone.classList.remove("dragging"))
  );
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    const files = event.dataTransfer.files;
    if (!files.length) return;
    const transfer = new DataTransfer();
    transfer.items.add(files[0]);
    picker.files = transfer.files;
    show(files[0]);
    form.requestSubmit();
  });
  form.addEventListener("submit", () => {
    button.disabled = true;
    button.textContent = "Searching…";
  });
})();
