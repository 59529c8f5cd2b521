(function () {
  "use strict";
  var form = document.getElementById("hit-form");
  var groups = Array.prototype.slice.call(form.querySelectorAll("fieldset.rating"));
  var counter = document.getElementById("answered-count");
  function radios(group) { return Array.prototype.slice.call(group.querySelectorAll('input[type="radio"]')); }
  function answer(group) { var r = radios(group).filter(function (x) { return x.checked; })[0]; return r ? r.value : ""; }
  function count() {
    var n = 0;
    groups.forEach(function (g) { var a = answer(g); g.classList.toggle("answered", !!a); if (a) { n += 1; } });
    counter.textContent = n;
  }
  // One image in focus at a time: its checked answer, or its Yes.
  function focusGroup(i) {
    var group = groups[i];
    if (!group) { return; }
    var target = radios(group).filter(function (x) { return x.checked; })[0] || radios(group)[0];
    target.focus();
    group.scrollIntoView({block: "nearest"});
  }
  function rowLength() {
    var top = groups[0].offsetTop, n = 0;
    while (n < groups.length && groups[n].offsetTop === top) { n += 1; }
    return Math.max(n, 1);
  }
  function nextOpen(i) {  // the next image without an answer, or simply the next one
    for (var j = i + 1; j < groups.length; j += 1) { if (!answer(groups[j])) { return j; } }
    return i + 1 < groups.length ? i + 1 : -1;
  }
  groups.forEach(function (group, i) {
    radios(group).forEach(function (radio) {
      radio.addEventListener("keydown", function (event) {
        if (event.ctrlKey || event.metaKey || event.altKey) { return; }
        var key = event.key.toLowerCase();
        if (key === "y" || key === "n") {
          event.preventDefault();
          var chosen = radios(group).filter(function (x) { return x.value === (key === "y" ? "yes" : "no"); })[0];
          chosen.checked = true;
          chosen.dispatchEvent(new Event("change", {bubbles: true}));
          var next = nextOpen(i);
          if (next >= 0) { focusGroup(next); } else { chosen.focus(); document.getElementById("submit").scrollIntoView({block: "nearest"}); }
          return;
        }
        var step = {ArrowRight: 1, ArrowLeft: -1, ArrowDown: rowLength(), ArrowUp: -rowLength()}[event.key];
        if (step) { event.preventDefault(); if (groups[i + step]) { focusGroup(i + step); } }
        if (key === "z") { event.preventDefault(); toggleLarge(group); }
        if (event.key === "Escape") { hideLarge(); }
      });
    });
  });

  // One image large: Z on the image in focus, or pressing and holding it.
  var zoom = document.getElementById("zoom");
  var zoomImage = zoom.querySelector("img");
  var pressTimer = null;
  function toggleLarge(group) {
    if (zoom.hidden) { zoomImage.src = group.querySelector("img").src; zoom.hidden = false; } else { hideLarge(); }
  }
  function hideLarge() { zoom.hidden = true; clearTimeout(pressTimer); }
  groups.forEach(function (group) {
    var img = group.querySelector("img");
    img.addEventListener("touchstart", function () { pressTimer = setTimeout(function () { toggleLarge(group); }, 500); },
                         {passive: true});
    img.addEventListener("touchend", hideLarge);
    img.addEventListener("touchmove", hideLarge, {passive: true});
  });
  zoom.addEventListener("click", hideLarge);

  // Never lose a draft: the answers given so far are kept in this browser (drafts.js).
  var store = hitDrafts.store;
  var draftKey = hitDrafts.key(form);
  hitDrafts.prune();
  function saveDraft() {
    if (!store || form.dataset.preview) { return; }
    var answers = {};
    groups.forEach(function (g) { var a = answer(g); if (a) { answers[g.dataset.position] = a; } });
    try { store.setItem(draftKey, JSON.stringify({answers: answers, saved: Date.now()})); } catch (error) { /* refused */ }
  }
  function restoreDraft() {
    if (!store || form.dataset.preview || form.dataset.bound) { return; }
    var draft = null;
    try { draft = JSON.parse(store.getItem(draftKey) || "null"); } catch (error) { draft = null; }
    if (!draft || !draft.answers) { return; }
    groups.forEach(function (g) {
      var a = draft.answers[g.dataset.position];
      radios(g).forEach(function (r) { if (a) { r.checked = r.value === a; } });
    });
  }
  restoreDraft();
  form.addEventListener("change", function () { count(); saveDraft(); });

  // A link in the error summary goes to its image.
  Array.prototype.forEach.call(document.querySelectorAll("#error-summary a"), function (link) {
    link.addEventListener("click", function (event) {
      var field = document.getElementById(link.getAttribute("href").slice(1));
      if (field) { event.preventDefault(); field.closest("fieldset").scrollIntoView(); field.focus(); }
    });
  });
  form.addEventListener("submit", function (event) {
    if (form.dataset.sent) { event.preventDefault(); return; }
    form.dataset.sent = "1";
    var button = document.getElementById("submit");
    setTimeout(function () { button.disabled = true; button.textContent = "Sending…"; }, 0);
  });
  count();
  var warning = document.getElementById("gold-warning");
  if (warning) { warning.focus(); }
  else if (groups.length && !form.dataset.preview && !document.getElementById("error-summary") && !form.dataset.bound) {
    focusGroup(0);
  }
})();
