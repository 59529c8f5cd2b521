(function () {
  "use strict";
  var form = document.getElementById("hit-form");
  var counter = document.getElementById("marked-count");
  var description = document.getElementById("description");
  var boxes = Array.prototype.slice.call(form.querySelectorAll('input[name="mismatch"]'));
  var radios = Array.prototype.slice.call(form.querySelectorAll('input[name="category"]'));
  function count() { counter.textContent = boxes.filter(function (b) { return b.checked; }).length; }
  // A touch screen (no hover): no keyboard hints, no focus put in the text box (its keyboard would
  // cover half the images before the worker has seen them).
  var touch = window.matchMedia && window.matchMedia("(hover: none)").matches;
  // The page scrolls a focused element clear of the sticky bar: the scroll padding is the bar's height.
  var bar = document.getElementById("submit-bar");
  function padForBar() { document.documentElement.style.setProperty("--bar-height", (bar.offsetHeight + 8) + "px"); }
  padForBar();
  window.addEventListener("resize", padForBar);

  // The image grid is one tab stop: the arrow keys move in all four directions (up and down by a
  // row of the grid as laid out now), Space or Enter marks.
  var current = 0;
  function rove(i) {
    boxes[current].tabIndex = -1;
    current = i;
    boxes[i].tabIndex = 0;
    boxes[i].focus({preventScroll: true});
    boxes[i].parentNode.scrollIntoView({block: "nearest"});  // the whole tile, clear of the bar
  }
  function rowLength() {
    var top = boxes[0].parentNode.offsetTop, n = 0;
    while (n < boxes.length && boxes[n].parentNode.offsetTop === top) { n += 1; }
    return Math.max(n, 1);
  }
  boxes.forEach(function (box, i) {
    box.tabIndex = i === 0 ? 0 : -1;
    box.addEventListener("change", count);
    box.addEventListener("focus", function () { if (current !== i) { rove(i); } });
    box.addEventListener("keydown", function (event) {
      if (event.key === "Enter") { event.preventDefault(); box.click(); return; }
      var step = {ArrowRight: 1, ArrowLeft: -1, ArrowDown: rowLength(), ArrowUp: -rowLength()}[event.key];
      if (step) {
        event.preventDefault();
        if (boxes[i + step]) { rove(i + step); }
      }
    });
  });

  // Keys 1 to 6 choose the category, wherever the focus is but in the text box.
  document.addEventListener("keydown", function (event) {
    if (event.target === description || event.ctrlKey || event.metaKey || event.altKey) { return; }
    var n = parseInt(event.key, 10);
    if (n >= 1 && n <= radios.length && !radios[n - 1].disabled) {
      event.preventDefault();
      radios[n - 1].checked = true;
      radios[n - 1].dispatchEvent(new Event("change", {bubbles: true}));
    }
  });

  // Enter in the text box goes on to the images instead of sending a half-done form.
  description.addEventListener("keydown", function (event) {
    if (event.key === "Enter") { event.preventDefault(); if (boxes.length) { rove(current); } }
  });
  description.addEventListener("input", function () {
    var text = description.value.trim();
    description.setCustomValidity(text ? "" : "Write one or two words for what the highlighted regions share.");
  });

  // A link in the error summary puts the cursor in its field.
  Array.prototype.forEach.call(document.querySelectorAll("#error-summary a"), function (link) {
    link.addEventListener("click", function (event) {
      var section = document.querySelector(link.getAttribute("href"));
      var field = section && section.querySelector("input:not([type=hidden])");
      if (field) { event.preventDefault(); section.scrollIntoView(); field.focus(); }
    });
  });

  // Never lose a draft: what the worker typed, marked and chose is kept in this browser for this
  // assignment, and comes back after a reload or when an open HIT is resumed (drafts.js).
  var store = hitDrafts.store;
  var draftKey = hitDrafts.key(form);
  function saveDraft() {
    if (!store || form.dataset.preview) { return; }
    var category = radios.filter(function (r) { return r.checked; })[0];
    var draft = {description: description.value, category: category ? category.value : "",
                 marked: boxes.filter(function (b) { return b.checked; }).map(function (b) { return b.value; }),
                 saved: Date.now()};
    try { store.setItem(draftKey, JSON.stringify(draft)); } catch (error) { /* full or refused */ }
  }
  function restoreDraft() {
    if (!store || form.dataset.preview || form.dataset.bound) { return; }  // the server's copy wins
    var draft = null;
    try { draft = JSON.parse(store.getItem(draftKey) || "null"); } catch (error) { draft = null; }
    if (!draft) { return; }
    description.value = draft.description || "";
    radios.forEach(function (r) { r.checked = r.value === draft.category; });
    boxes.forEach(function (b) { b.checked = (draft.marked || []).indexOf(b.value) >= 0; });
  }
  hitDrafts.prune();
  restoreDraft();
  form.addEventListener("input", saveDraft);
  form.addEventListener("change", saveDraft);
  // The instructions fold away once a worker has sent a first HIT (the summary opens them again).
  var instructions = document.getElementById("instructions");
  if (store && instructions && !form.dataset.bound && store.getItem("hit-instructions-read")) {
    instructions.open = false;
  }
  // On a phone they start folded too (their summary says the gist), so the first screen shows images.
  if (instructions && !form.dataset.bound && window.matchMedia && window.matchMedia("(max-width: 600px)").matches) {
    instructions.open = false;
  }

  // One image large: Z on the focused image, resting the mouse on one, or pressing and holding it.
  var zoom = document.getElementById("zoom");
  var zoomImage = zoom.querySelector("img");
  var hoverTimer = null, pressTimer = null;
  function showLarge(box) { zoomImage.src = box.parentNode.querySelector("img").src; zoom.hidden = false; }
  function hideLarge() { zoom.hidden = true; clearTimeout(hoverTimer); clearTimeout(pressTimer); }
  boxes.forEach(function (box) {
    var tile = box.parentNode;
    box.addEventListener("keydown", function (event) {
      if (event.key === "z" || event.key === "Z") { event.preventDefault(); if (zoom.hidden) { showLarge(box); } else { hideLarge(); } }
      else if (event.key === "Escape") { hideLarge(); }
    });
    box.addEventListener("blur", hideLarge);
    tile.addEventListener("mouseenter", function () { hoverTimer = setTimeout(function () { showLarge(box); }, 700); });
    tile.addEventListener("mouseleave", hideLarge);
    tile.addEventListener("touchstart", function () { pressTimer = setTimeout(function () { showLarge(box); }, 500); },
                          {passive: true});
    tile.addEventListener("touchend", function (event) { if (!zoom.hidden) { event.preventDefault(); } hideLarge(); });
    tile.addEventListener("touchmove", hideLarge, {passive: true});
  });

  // The bar with Submit stays in view while the grid scrolls, and names the chosen category.
  var chosen = document.getElementById("chosen-category");
  function showChoice() {
    var radio = radios.filter(function (r) { return r.checked; })[0];
    chosen.textContent = radio ? "Category: " + radio.parentNode.querySelector("strong").textContent
                               : (touch ? "Category: choose below" : "Category: press 1 to 6, or choose below");
  }
  radios.forEach(function (r) { r.addEventListener("change", showChoice); });
  showChoice();

  form.addEventListener("submit", function (event) {
    if (form.dataset.sent) { event.preventDefault(); return; }
    if (store) { try { store.setItem("hit-instructions-read", "1"); } catch (error) { /* refused */ } }
    form.dataset.sent = "1";
    var button = document.getElementById("submit");
    setTimeout(function () { button.disabled = true; button.textContent = "Sending…"; }, 0);
  });
  // The first screen's images are requested at once; the rest right after the page has loaded, so
  // that scrolling down never shows empty tiles.
  window.addEventListener("load", function () {
    Array.prototype.forEach.call(document.querySelectorAll('img[loading="lazy"]'), function (img) { img.loading = "eager"; });
  });
  count();
  // After a gold warning the focus is on the warning (it links to the images); after an error on
  // the summary; else in the text box, but not on a touch screen.
  var warning = document.getElementById("gold-warning");
  if (warning) {
    warning.focus();
    document.getElementById("gold-warning-images").addEventListener("click", function (event) {
      event.preventDefault();
      document.getElementById("step-mismatch").scrollIntoView();
      if (boxes.length) { rove(current); }
    });
  } else if (!description.disabled && !document.getElementById("error-summary") && !touch) {
    description.focus();
  }
})();
