// Click logging for similar-items lists: a click on a listed product sends a beacon with the
// list's token and the product id; the server knows the list, so it derives the position.
(function () {
  "use strict";
  document.addEventListener("click", function (event) {
    var link = event.target.closest ? event.target.closest("[data-impression] .card a") : null;
    if (!link || !navigator.sendBeacon) return;
    var list = link.closest("[data-impression]");
    var card = link.closest(".card");
    var data = new FormData();
    data.append("list", list.getAttribute("data-impression"));
    data.append("product", card.getAttribute("data-product-id"));
    navigator.sendBeacon(list.getAttribute("data-click-url"), data);
  });
})();
