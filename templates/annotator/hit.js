(function () {
  "use strict";
  var form = document.getElementById("hit-form");
  var counter = document.getElementById("marked-count");
  var boxes = Array.prototype.slice.call(form.querySelectorAll('input[name="mismatch"]'));
  function count() { counter.textContent = boxes.filter(function (b) { return b.checked; }).length; }
  boxes.forEach(function (box, i) {
    box.addEventListener("change", count);
    box.addEventListener("keydown", function (event) {
      if (event.key === "Enter") { event.preventDefault(); box.click(); }
      var step = {ArrowRight: 1, ArrowLeft: -1}[event.key];
      if (step && boxes[i + step]) { event.preventDefault(); boxes[i + step].focus(); }
    });
  });
  var description = document.getElementById("description");
  description.addEventListener("input", function () {
    var text = description.value.trim();
    description.setCustomValidity(text ? "" : "Write one or two words for what the highlighted regions share.");
  });
  form.addEventListener("submit", function (event) {
    if (form.dataset.sent) { event.preventDefault(); return; }
    form.dataset.sent = "1";
    var button = document.getElementById("submit");
    setTimeout(function () { button.disabled = true; button.textContent = "Sending…"; }, 0);
  });
  count();
})();
