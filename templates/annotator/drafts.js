// Where every HIT page keeps its draft: this browser's storage, one entry per page and assignment, so a
// reload or a resumed HIT gets its answers back. Storage may be refused inside a platform's frame; then
// nothing is kept, and nothing breaks. Drafts older than a week are of HITs long gone.
var hitDrafts = (function () {
  "use strict";
  var store = null;
  try { store = window.localStorage; store.getItem("probe"); } catch (error) { store = null; }
  function key(form) {
    var assignment = form.dataset.draft || new URLSearchParams(location.search).get("assignmentId") || "";
    return "hit-draft:" + location.pathname + ":" + assignment;
  }
  function prune() {
    if (!store) { return; }
    for (var i = store.length - 1; i >= 0; i -= 1) {
      var name = store.key(i);
      if (name && name.indexOf("hit-draft:") === 0) {
        try { if (Date.now() - JSON.parse(store.getItem(name)).saved > 7 * 86400000) { store.removeItem(name); } }
        catch (error) { store.removeItem(name); }
      }
    }
  }
  return {store: store, key: key, prune: prune};
})();
