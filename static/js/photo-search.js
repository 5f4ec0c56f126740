// Search by photo: drag and drop, a preview of the chosen photo, and a busy state.
(function () {
  const form = document.getElementById("photo-form");
  if (!form) return;
  const zone = document.getElementById("dropzone");
  const picker = document.getElementById("id_photo");
  const camera = document.getElementById("id_camera");
  const preview = document.getElementById("preview");
  const button = document.getElementById("search-button");

  function show(file) {
    if (!file || !file.type.startsWith("image/")) return;
    preview.src = URL.createObjectURL(file);
    preview.hidden = false;
    zone.classList.add("has-photo");
  }

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
