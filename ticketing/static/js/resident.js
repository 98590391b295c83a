/* Resident pages. Every part only adds to a page that works without JavaScript:
   - the building list narrows to the chosen complex (without JS every option stays, grouped);
   - a search box filters the complex list by the complex's or the community's name;
   - "use my location" fills the hidden lat/lon fields (WGS-84, as browsers give it);
   - "copy link" copies the tracking link. */
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

  /* Options cannot be hidden on every phone (iOS Safari shows them anyway), so the
     filter takes options out of their group and puts the matching ones back. */
  function searchable(box) {
    var select = document.getElementById(box.getAttribute("data-search"));
    if (!select) { return; }
    var groups = Array.prototype.map.call(select.querySelectorAll("optgroup"), function (group) {
      return { node: group, label: group.label.toLowerCase(),
               options: Array.prototype.slice.call(group.querySelectorAll("option")) };
    });
    box.hidden = false;
    box.addEventListener("input", function () {
      var query = box.value.trim().toLowerCase();
      var keep = select.value, matches = [];
      groups.forEach(function (group) {
        var whole = !query || group.label.indexOf(query) !== -1;
        group.options.forEach(function (option) {
          var fits = whole || option.text.toLowerCase().indexOf(query) !== -1;
          if (fits) { group.node.appendChild(option); matches.push(option); }
          else if (option.parentNode) { option.parentNode.removeChild(option); }
        });
        if (group.node.children.length && group.node.parentNode !== select) { select.appendChild(group.node); }
        if (!group.node.children.length && group.node.parentNode) { select.removeChild(group.node); }
      });
      groups.forEach(function (group) {  // document order again
        if (group.node.parentNode === select) { select.appendChild(group.node); }
      });
      select.value = keep;
      if (select.value !== keep) { select.value = ""; }
      if (query && matches.length === 1) { select.value = matches[0].value; }
      if (select.getAttribute("data-filters")) { narrow(select); }
    });
  }

  function locator(button) {
    var lat = document.getElementById("lat"), lon = document.getElementById("lon");
    var note = document.getElementById("location-status");
    if (!lat || !lon || !note || !navigator.geolocation) { return; }
    button.parentNode.hidden = false;
    button.addEventListener("click", function () {
      note.textContent = button.getAttribute("data-waiting");
      navigator.geolocation.getCurrentPosition(function (pos) {
        lat.value = pos.coords.latitude.toFixed(6);
        lon.value = pos.coords.longitude.toFixed(6);
        note.textContent = button.getAttribute("data-found");
      }, function () {
        lat.value = ""; lon.value = "";
        note.textContent = button.getAttribute("data-failed");
      }, { enableHighAccuracy: true, timeout: 15000, maximumAge: 60000 });
    });
  }

  function copier(button) {
    var text = button.getAttribute("data-copy");
    var note = document.getElementById(button.getAttribute("aria-describedby"));
    if (!text) { return; }
    button.hidden = false;
    button.addEventListener("click", function () {
      function done(ok) {
        if (note) { note.textContent = button.getAttribute(ok ? "data-copied" : "data-failed"); }
      }
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(text).then(function () { done(true); }, function () { done(false); });
        return;
      }
      // Plain HTTP or an old browser: copy from a selected text field.
      var field = document.createElement("textarea");
      field.value = text; field.setAttribute("readonly", "");
      field.style.position = "fixed"; field.style.opacity = "0";
      document.body.appendChild(field);
      field.select();
      var ok = false;
      try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
      document.body.removeChild(field);
      done(ok);
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    Array.prototype.forEach.call(document.querySelectorAll("select[data-filters]"), function (select) {
      select.addEventListener("change", function () { narrow(select); });
      narrow(select);
    });
    Array.prototype.forEach.call(document.querySelectorAll("input[data-search]"), searchable);
    var locate = document.getElementById("use-location");
    if (locate) { locator(locate); }
    Array.prototype.forEach.call(document.querySelectorAll("button[data-copy]"), copier);
  });
})();
