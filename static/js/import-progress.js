// An import's page: polls the job's status and updates the progress bar, counts and
// failure list in place until the job is done.
(function () {
  const box = document.querySelector("[data-status-url]");
  if (!box) return;
  const url = box.dataset.statusUrl;
  const bar = box.querySelector("[role=progressbar]");
  const fill = box.querySelector(".progress-fill");
  const failures = box.querySelector("[data-testid=import-failures]");
  const failureRows = box.querySelector("[data-testid=failure-rows]");
  const STATUS = {queued: "Queued", running: "Running", finished: "Finished", failed: "Failed"};

  function setField(name, value) {
    box.querySelectorAll(`[data-field="${name}"]`).forEach((el) => { el.textContent = value; });
  }

  function cell(row, text) {
    const td = document.createElement("td");
    td.textContent = text;
    row.appendChild(td);
  }

  function showFailures(status) {
    const rows = status.errors.map((e) => [e.row, e.sku, e.field, e.message]).concat(
      status.photo_failures.map((f) => ["", f.sku, "photo", f.message]));
    failureRows.replaceChildren(...rows.map((values) => {
      const tr = document.createElement("tr");
      values.forEach((value) => cell(tr, String(value)));
      return tr;
    }));
    failures.hidden = rows.length === 0;
  }

  function show(status) {
    bar.setAttribute("aria-valuenow", status.percent);
    fill.style.width = status.percent + "%";
    setField("percent", status.percent + " %");
    setField("status", STATUS[status.status] || status.status);
    ["rows_parsed", "rows_total", "photos_embedded", "photos_total", "rows_failed",
     "products_created", "products_updated"].forEach((name) => setField(name, status[name]));
    setField("error", status.error);
    box.querySelector("[data-field=error]").hidden = !status.error;
    showFailures(status);
    box.querySelector("[data-testid=import-done]").hidden = !status.done;
  }

  async function poll() {
    try {
      const response = await fetch(url, {headers: {Accept: "application/json"}});
      if (response.ok) {
        const status = await response.json();
        show(status);
        if (status.done) return;
      }
    } catch (error) {
      // A dropped connection: try again on the next tick.
    }
    setTimeout(poll, 1000);
  }

  poll();
})();
