/* Resident report form: narrow the complex list to the chosen community, and the
   building list to the chosen complex. Without JavaScript every option stays, grouped. */
(function () {
  "use strict";

  function narrow(parentSelect) {
    var child = document.getElementById(parentSelect.getAttribute("data-filters"));
    if (!child) { return; }
    // Keep every group once, so a later change can bring hidden ones back.
    if (!child._allGroups) {
      child._allGroups = Array.prototype.slice.call(child.querySelectorAll("optgroup"));
    }
    // With nothing chosen above, offer what belongs to any option still offered above.
    var allowed = parentSelect.value ? [parentSelect.value] :
      Array.prototype.map.call(parentSelect.options, function (option) { return option.value; });
    var keep = child.value;
    child._allGroups.forEach(function (group) {
      var fits = allowed.indexOf(group.getAttribute("data-parent")) !== -1;
      if (fits && group.parentNode !== child) { child.appendChild(group); }
      if (!fits && group.parentNode === child) { child.removeChild(group); }
    });
    // Restore document order after re-adding groups.
    child._allGroups.forEach(function (group) {
      if (group.parentNode === child) { child.appendChild(group); }
    });
    child.value = keep;
    if (child.value !== keep) { child.value = ""; }
    if (child.getAttribute("data-filters")) { narrow(child); }
  }

  document.addEventListener("DOMContentLoaded", function () {
    var selects = document.querySelectorAll("select[data-filters]");
    Array.prototype.forEach.call(selects, function (select) {
      select.addEventListener("change", function () { narrow(select); });
      narrow(select);
    });
  });
})();
