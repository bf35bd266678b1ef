// Enhancements only: every page works without this script.
(function () {
  'use strict';
  // A running load's progress, refreshed in place.
  var box = document.getElementById('progress');
  if (box && box.dataset.running === 'true') {
    var timer = setInterval(function () {
      fetch('/api/progress', {credentials: 'same-origin'}).then(function (r) { return r.json(); }).then(function (p) {
        if (!p) { return; }
        document.getElementById('p-work').textContent = p.work;
        document.getElementById('p-stage').textContent = p.stage;
        var pct = p.total > 0 ? Math.min(100, Math.floor(p.done * 100 / p.total)) : 0;
        document.getElementById('p-count').textContent = p.done.toLocaleString() + (p.total > 0 ? ' / ' + p.total.toLocaleString() + ' ' + p.unit + ' (' + pct + '%)' : ' ' + p.unit);
        var bar = document.getElementById('p-bar');
        if (bar) { bar.value = pct; }
        if (p.finished) { clearInterval(timer); location.reload(); }
      }).catch(function () {});
    }, 1000);
  }
  // Chart tooltips that follow the pointer (the SVG <title> works without JS).
  var tip = document.createElement('div');
  tip.id = 'tip';
  document.body.appendChild(tip);
  document.querySelectorAll('svg rect').forEach(function (r) {
    var t = r.querySelector('title');
    if (!t) { return; }
    var text = t.textContent;
    r.addEventListener('mousemove', function (e) {
      tip.textContent = text;
      tip.style.left = (e.clientX + 12) + 'px';
      tip.style.top = (e.clientY + 12) + 'px';
      tip.style.display = 'block';
    });
    r.addEventListener('mouseleave', function () { tip.style.display = 'none'; });
  });
})();
