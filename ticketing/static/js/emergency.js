/* Resident report form: show what to do at once when the chosen category or the words
   typed describe an emergency (templates/resident/_emergency.html). The rules come
   from the page (#emergency-rules): which guidance each category calls for, and the
   urgent words with the guidance each belongs to, matched as the server matches them
   (ticketing/services/classify.py: a word, unless a negation stands right before it;
   a word of several parts needs them all within a few characters). Without
   JavaScript the server shows the guidance again when the form comes back, and on
   the confirmation page. */
(function () {
  "use strict";

  var GENERAL = "guide:general";

  function positions(text, part, negations) {
    var found = [], at = text.indexOf(part);
    while (at >= 0) {
      var before = text.slice(Math.max(0, at - 2), at);
      var negated = negations.some(function (word) {
        return before.slice(before.length - word.length) === word;
      });
      if (!negated) { found.push(at); }
      at = text.indexOf(part, at + 1);
    }
    return found;
  }

  function triggerFound(parts, text, rules) {
    var places = parts.map(function (part) { return positions(text, part, rules.negations); });
    if (places.some(function (spots) { return spots.length === 0; })) { return false; }
    if (places.length === 1) { return true; }
    return places[0].some(function (start) {
      return places.slice(1).every(function (spots) {
        return spots.some(function (at) { return Math.abs(at - start) <= rules.window; });
      });
    });
  }

  function normalise(text) {
    return (text.normalize ? text.normalize("NFKC") : text).toLowerCase();
  }

  document.addEventListener("DOMContentLoaded", function () {
    var box = document.getElementById("emergency");
    var data = document.getElementById("emergency-rules");
    var form = document.querySelector("form.report-form");
    if (!box || !data || !form) { return; }
    var rules = JSON.parse(data.textContent);
    var description = form.querySelector("textarea[name=description]");
    var checked = form.querySelector("input[name=category_id]:checked");
    var categoryKey = checked ? rules.categories[checked.value] || null : null, wordKeys = [];

    var blocks = Array.prototype.slice.call(box.querySelectorAll(".emergency-guidance"));
    function textOf(block) {
      return Array.prototype.map.call(block.querySelectorAll("p"), function (p) { return p.textContent; }).join("\n");
    }

    // As the server does: the category's guidance first, each text once, the general
    // guide only when nothing more particular applies.
    function show(anchor) {
      var keys = (categoryKey ? [categoryKey] : []).concat(wordKeys);
      var particular = keys.some(function (key) { return key !== GENERAL; });
      var on = [], texts = [];
      keys.forEach(function (key) {
        var block = blocks.filter(function (b) { return b.getAttribute("data-key") === key; })[0];
        if (!block || (particular && key === GENERAL) || texts.indexOf(textOf(block)) !== -1) { return; }
        on.push(block);
        texts.push(textOf(block));
      });
      blocks.forEach(function (block) { block.hidden = on.indexOf(block) === -1; });
      var shown = on.length;
      var wasHidden = box.hidden;
      box.hidden = shown === 0;
      // Put it right under what called for it, where the resident is looking.
      if (shown && wasHidden && anchor) {
        var place = anchor.closest("section") || anchor;
        if (place.nextElementSibling !== box) { place.parentNode.insertBefore(box, place.nextElementSibling); }
      }
    }

    form.addEventListener("change", function (event) {
      var target = event.target;
      if (target.name === "category_id") {
        categoryKey = rules.categories[target.value] || null;
        show(target);
      }
    });
    if (description) {
      var check = function () {
        var text = normalise(description.value);
        wordKeys = [];
        rules.triggers.forEach(function (trigger) {
          if (wordKeys.indexOf(trigger.key) === -1 && triggerFound(trigger.parts, text, rules)) {
            wordKeys.push(trigger.key);
          }
        });
        show(description);
      };
      description.addEventListener("input", check);
      if (description.value) { check(); }
    }
  });
})();
