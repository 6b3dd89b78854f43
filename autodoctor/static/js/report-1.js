/* Diagnostic report form: add and remove trouble-code and repair rows in place, without a
   round trip (the mechanic may be on a flaky shop network). New rows come from a <template>
   and are handed to htmx so their live code lookup works. */
(function () {
  "use strict";
  function addButton(list) { return document.querySelector('[data-add-row="' + list.id + '"]'); }
  function sync(list) {
    var add = addButton(list);
    if (add) add.hidden = list.children.length >= Number(list.getAttribute("data-max"));
  }
  document.addEventListener("click", function (e) {
    var add = e.target.closest("[data-add-row]");
    if (add) {
      var list = document.getElementById(add.getAttribute("data-add-row"));
      var tpl = document.getElementById(add.getAttribute("data-template"));
      if (!list || !tpl || list.children.length >= Number(list.getAttribute("data-max"))) return;
      var row = tpl.content.firstElementChild.cloneNode(true);
      list.appendChild(row);
      if (window.htmx) htmx.process(row);
      row.querySelector("input").focus();
      sync(list);
      return;
    }
    var remove = e.target.closest("[data-remove-row]");
    if (remove) {
      var item = remove.closest(".report-row"), rows = item && item.parentElement;
      if (!item) return;
      item.remove();
      sync(rows);
      var next = addButton(rows);
      if (next) next.focus();
    }
  });
})();
