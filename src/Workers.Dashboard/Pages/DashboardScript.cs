namespace Workers.Dashboard.Pages;

/// <summary>
/// /dashboard.js, served as a file (the CSP forbids inline script). Every 5 s it refreshes the
/// overview's cells (<c>tr[data-corpus] [data-field]</c>) from /api/corpora and redraws
/// <c>svg#throughput-chart</c> from /api/history?minutes=60: audio hours per minute as a line
/// (left axis), failed attempts per minute as bars (right axis). No framework, no reload; a missing
/// endpoint (404) or a failed poll leaves the page as it is and the next poll tries again.
/// </summary>
internal static class DashboardScript
{
    public const string Text = """
        'use strict';
        const STATES = ['queued', 'running', 'succeeded', 'dead', 'cancelled'];
        const SVG = 'http://www.w3.org/2000/svg';

        function duration(s) {
          if (s >= 3600) return Math.floor(s / 3600) + ' h ' + Math.floor((s % 3600) / 60) + ' min';
          if (s >= 60) return Math.floor(s / 60) + ' min';
          return Math.round(s) + ' s';
        }
        function fmtEta(s) {
          if (s === null || s === undefined) return '-';
          return s <= 0 ? 'done' : duration(s);
        }
        async function getJson(url) {
          const r = await fetch(url, { headers: { 'Accept': 'application/json' } });
          return r.ok ? r.json() : null;
        }

        async function refreshCorpora() {
          const d = await getJson('/api/corpora');
          if (!d) return;
          const rate = document.getElementById('rate');
          if (rate) rate.textContent = d.fleet_audio_hours_per_minute.toFixed(3);
          let remaining = 0;
          const added = [];
          const rows = new Map();
          for (const tr of document.querySelectorAll('tr[data-corpus]')) rows.set(tr.getAttribute('data-corpus'), tr);
          for (const c of d.corpora) {
            if (!c.cancelled) remaining += Math.max(0, c.audio_seconds - c.processed_seconds);
            const tr = rows.get(c.name);
            if (!tr) { added.push(c.name); continue; }
            const set = (f, v) => { const e = tr.querySelector('[data-field="' + f + '"]'); if (e) e.textContent = v; };
            const bar = tr.querySelector('progress[data-field="bar"]');
            if (bar) bar.value = c.progress;
            set('progress', (c.progress * 100).toFixed(1) + '%');
            set('hours', c.processed_hours.toFixed(2) + ' / ' + c.audio_hours.toFixed(2));
            set('shards', STATES.map(s => c.shards[s] || 0).join(' / '));
            set('failed-files', c.failed_files);
            set('eta', c.cancelled ? '-' : fmtEta(c.eta_seconds));
            // Buttons follow the state: cancel only while something is left to do, re-run only while shards are dead.
            const cancel = tr.querySelector('form[action$="/cancel"]');
            if (cancel) cancel.hidden = (c.shards.queued || 0) + (c.shards.running || 0) === 0;
            const rerun = tr.querySelector('form[action$="/rerun-failed"]');
            if (rerun) rerun.hidden = (c.shards.dead || 0) === 0;
          }
          // A corpus enqueued elsewhere since this page was drawn: say so instead of hiding it.
          const note = document.getElementById('new-corpora');
          if (note) {
            note.hidden = added.length === 0;
            note.textContent = added.length === 0 ? '' : 'New since this page was loaded: ' + added.join(', ') + ' (reload to list).';
          }
          const eta = document.getElementById('fleet-eta');
          if (eta) eta.textContent = remaining <= 0 ? 'done' : d.fleet_rate > 0 ? duration(remaining / d.fleet_rate) : '-';
        }

        function el(name, attrs, text) {
          const e = document.createElementNS(SVG, name);
          for (const k in attrs) e.setAttribute(k, attrs[k]);
          if (text !== undefined) e.textContent = text;
          return e;
        }
        // A round axis maximum: 1, 2 or 5 times a power of ten, at least the data's maximum.
        function niceMax(v) {
          if (!(v > 0)) return 1;
          const p = Math.pow(10, Math.floor(Math.log10(v)));
          for (const m of [1, 2, 5, 10]) if (m * p >= v) return m * p;
          return 10 * p;
        }
        function drawChart(svg, h) {
          const W = 720, H = 220, L = 60, R = 60, T = 20, B = 30;
          const pts = h.points || [];
          const perMinute = 60 / (h.bucket_seconds || 60);
          const hours = pts.map(p => p.audio_seconds / 3600 * perMinute);
          const failed = pts.map(p => p.attempts_failed * perMinute);
          const maxH = niceMax(Math.max(0, ...hours)), maxF = niceMax(Math.max(0, ...failed));
          const n = Math.max(pts.length, 2), step = (W - L - R) / (n - 1);
          const x = i => L + i * step, yH = v => H - B - v / maxH * (H - T - B), yF = v => H - B - v / maxF * (H - T - B);
          while (svg.firstChild) svg.removeChild(svg.firstChild);
          svg.appendChild(el('line', { x1: L, y1: H - B, x2: W - R, y2: H - B, stroke: '#999' }));
          svg.appendChild(el('line', { x1: L, y1: T, x2: L, y2: H - B, stroke: '#1565c0' }));
          svg.appendChild(el('line', { x1: W - R, y1: T, x2: W - R, y2: H - B, stroke: '#c62828' }));
          svg.appendChild(el('text', { x: L - 4, y: T + 4, 'text-anchor': 'end', fill: '#1565c0', 'font-size': 11 }, String(maxH)));
          svg.appendChild(el('text', { x: L - 4, y: H - B, 'text-anchor': 'end', fill: '#1565c0', 'font-size': 11 }, '0'));
          svg.appendChild(el('text', { x: W - R + 4, y: T + 4, fill: '#c62828', 'font-size': 11 }, String(maxF)));
          svg.appendChild(el('text', { x: W - R + 4, y: H - B, fill: '#c62828', 'font-size': 11 }, '0'));
          svg.appendChild(el('text', { x: L, y: H - 8, 'font-size': 11, fill: '#555' }, '-' + Math.round(pts.length * (h.bucket_seconds || 60) / 60) + ' min'));
          svg.appendChild(el('text', { x: W - R, y: H - 8, 'text-anchor': 'end', 'font-size': 11, fill: '#555' }, 'now'));
          svg.appendChild(el('text', { x: L, y: 12, fill: '#1565c0', 'font-size': 12 }, 'audio hours / min (line)'));
          svg.appendChild(el('text', { x: W - R, y: 12, 'text-anchor': 'end', fill: '#c62828', 'font-size': 12 }, 'failed attempts / min (bars)'));
          const bw = Math.max(1, step * 0.6);
          failed.forEach((v, i) => {
            if (v > 0) svg.appendChild(el('rect', { x: x(i) - bw / 2, y: yF(v), width: bw, height: H - B - yF(v), fill: '#e57373', 'class': 'failures' }));
          });
          if (hours.length > 0)
            svg.appendChild(el('polyline', { points: hours.map((v, i) => x(i).toFixed(1) + ',' + yH(v).toFixed(1)).join(' '),
              fill: 'none', stroke: '#1565c0', 'stroke-width': 2, 'class': 'throughput' }));
        }
        async function refreshChart() {
          const svg = document.getElementById('throughput-chart');
          if (!svg) return;
          const h = await getJson('/api/history?minutes=60');
          if (h && Array.isArray(h.points)) drawChart(svg, h);
          else {
            while (svg.firstChild) svg.removeChild(svg.firstChild);
            svg.appendChild(el('text', { x: 20, y: 110, fill: '#777' }, 'No throughput history available.'));
          }
        }

        async function refresh() {
          try { await refreshCorpora(); } catch (e) { /* the next poll tries again */ }
          try { await refreshChart(); } catch (e) { /* as above */ }
        }
        refresh();
        setInterval(refresh, 5000);
        """;
}
