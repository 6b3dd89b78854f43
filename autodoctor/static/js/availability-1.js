/* Availability editor: add/remove time ranges, the day-off toggles and "copy Monday",
   all without a reload. Delegated from document so fragments swapped in by HTMX work too. */
(function () {
  "use strict";

  function pad(n) { return (n < 10 ? "0" : "") + n; }
  function toMinutes(value) {
    var parts = (value || "").split(":");
    return parts.length < 2 ? null : parseInt(parts[0], 10) * 60 + parseInt(parts[1], 10);
  }
  function toTime(minutes) { minutes = ((minutes % 1440) + 1440) % 1440; return pad(Math.floor(minutes / 60)) + ":" + pad(minutes % 60); }

  function markDirty(el) {
    var form = el.closest("form");
    var flag = form && form.querySelector("[data-unsaved]");
    if (flag) flag.hidden = false;
  }

  function newRange(list, start, end) {
    var template = document.getElementById(list.dataset.template || "range-template");
    var row = template.content.firstElementChild.cloneNode(true);
    var prefix = list.dataset.prefix || "", label = list.dataset.label || "";
    row.querySelectorAll("input").forEach(function (input) {
      input.name = prefix + input.name;
      input.setAttribute("aria-label", label + " " + input.getAttribute("aria-label").trim());
    });
    row.querySelector("input[name$=start]").value = start;
    row.querySelector("input[name$=end]").value = end;
    list.appendChild(row);
    return row;
  }

  function addRange(list) {
    var last = list.querySelector("[data-range]:last-of-type input[name$=end]");
    var lastEnd = last ? toMinutes(last.value) : null;
    var start = 9 * 60, end = 17 * 60;
    if (lastEnd !== null && !isNaN(lastEnd)) {
      start = Math.min(lastEnd + 60, 23 * 60);
      end = Math.min(start + 60, 24 * 60);
    }
    var row = newRange(list, toTime(start), toTime(end));
    row.querySelector("input").focus();
    markDirty(list);
  }

  function setDay(day, on) {
    day.querySelector("[data-day-toggle]").checked = on;
    day.querySelector("[data-day-body]").hidden = !on;
    day.querySelector("[data-day-off]").hidden = on;
    var list = day.querySelector("[data-ranges]");
    if (on && !list.querySelector("[data-range]")) newRange(list, "09:00", "17:00");
  }

  document.addEventListener("click", function (event) {
    var target = event.target;
    var add = target.closest("[data-add-range]");
    if (add) {
      addRange(add.parentElement.querySelector("[data-ranges]"));
      return;
    }
    var remove = target.closest("[data-remove-range]");
    if (remove) {
      var row = remove.closest("[data-range]"), list = row.parentElement;
      markDirty(list);
      var next = row.nextElementSibling || row.previousElementSibling;
      row.remove();
      var day = list.closest("[data-weekday]");
      if (day && !list.querySelector("[data-range]")) setDay(day, false);
      var focus = next ? next.querySelector("input") : list.parentElement.querySelector("[data-add-range]");
      if (focus && focus.offsetParent !== null) focus.focus();
      return;
    }
    var copy = target.closest("[data-copy-monday]");
    if (copy) {
      var form = copy.closest("form");
      var monday = form.querySelector("[data-weekday='0']");
      var ranges = Array.prototype.map.call(monday.querySelectorAll("[data-range]"), function (r) {
        return [r.querySelector("input[name$=start]").value, r.querySelector("input[name$=end]").value];
      });
      var on = monday.querySelector("[data-day-toggle]").checked && ranges.length > 0;
      for (var n = 1; n <= 4; n++) {
        var day = form.querySelector("[data-weekday='" + n + "']");
        var list = day.querySelector("[data-ranges]");
        list.innerHTML = "";
        ranges.forEach(function (pair) { newRange(list, pair[0], pair[1]); });
        setDay(day, on);
      }
      markDirty(copy);
    }
  });

  document.addEventListener("change", function (event) {
    var target = event.target;
    if (target.matches("[data-day-toggle]")) {
      setDay(target.closest("[data-weekday]"), target.checked);
      markDirty(target);
    } else if (target.matches("[data-override-off]")) {
      var hours = target.closest("form").querySelector("[data-override-hours]");
      if (hours) hours.hidden = target.checked;
    } else if (target.closest("[data-availability-form]")) {
      markDirty(target);
    }
  });
})();
