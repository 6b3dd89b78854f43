// The signature pad of the waiver: pointer strokes on a canvas (finger, pen or mouse); on
// submit the drawing goes into the hidden `signature` field as a PNG data URL (empty when
// nothing was drawn, so the server asks for a signature).
(function () {
  function setUp(form) {
    var canvas = form.querySelector("[data-signature-pad]");
    var field = form.querySelector("[data-signature-value]");
    var ctx = canvas.getContext("2d");
    var drawn = false, last = null;
    ctx.lineWidth = 3; ctx.lineCap = "round"; ctx.lineJoin = "round"; ctx.strokeStyle = "#111";

    function point(e) {
      var box = canvas.getBoundingClientRect();
      return { x: (e.clientX - box.left) * canvas.width / box.width,
               y: (e.clientY - box.top) * canvas.height / box.height };
    }
    canvas.addEventListener("pointerdown", function (e) {
      canvas.setPointerCapture(e.pointerId);
      last = point(e);
      ctx.beginPath(); ctx.arc(last.x, last.y, 1.5, 0, 2 * Math.PI); ctx.fill();
      drawn = true;
    });
    canvas.addEventListener("pointermove", function (e) {
      if (!last) return;
      var p = point(e);
      ctx.beginPath(); ctx.moveTo(last.x, last.y); ctx.lineTo(p.x, p.y); ctx.stroke();
      last = p;
    });
    ["pointerup", "pointercancel", "pointerleave"].forEach(function (type) {
      canvas.addEventListener(type, function () { last = null; });
    });
    form.querySelector("[data-signature-clear]").addEventListener("click", function () {
      ctx.clearRect(0, 0, canvas.width, canvas.height);
      drawn = false;
      field.value = "";
    });
    form.addEventListener("submit", function () {
      field.value = drawn ? canvas.toDataURL("image/png") : "";
    });
  }
  document.querySelectorAll("[data-waiver-form]").forEach(setUp);
})();
