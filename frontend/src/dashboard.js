// The admin's dashboard (/hosts/): the live part is server-rendered HTML fetched every few
// seconds (so every string is translated by Django and every web process shows the same
// database), and two uPlot charts drawn from the JSON that part carries.
import uPlot from 'uplot';

const REFRESH_MS = 5000;
const COLORS = ['#1f6feb', '#1a7f37', '#9a6700', '#cf222e', '#8250df', '#0969da', '#bf3989'];

function readSeries() {
  const el = document.getElementById('dash-series');
  return el ? JSON.parse(el.textContent) : null;
}

function chartWidth(box) {
  return Math.max(280, box.clientWidth - 8);
}

class Charts {
  constructor(root) {
    this.loadBox = root.querySelector('[data-chart="load"]');
    this.startBox = root.querySelector('[data-chart="starts"]');
    this.load = null;
    this.starts = null;
    this.hostNames = '';
    window.addEventListener('resize', () => this.resize());
  }

  draw(series) {
    if (!series || !this.loadBox || !this.startBox) return;
    const hosts = Object.keys(series.load);
    const loadData = [series.x, ...hosts.map((h) => series.load[h])];
    if (!this.load || this.hostNames !== hosts.join('\n')) {
      if (this.load) this.load.destroy();
      this.hostNames = hosts.join('\n');
      this.load = new uPlot(
        {
          width: chartWidth(this.loadBox),
          height: 220,
          series: [{ label: series.labels.time }, ...hosts.map((h, i) => ({ label: h, stroke: COLORS[i % COLORS.length], width: 2, spanGaps: true, points: { show: true, size: 4 } }))],
          axes: [{}, { label: series.labels.sessions }],
          scales: { y: { range: (u, min, max) => [0, Math.max(4, max + 1)] } },
        },
        loadData,
        this.loadBox,
      );
    } else {
      this.load.setData(loadData);
    }
    const startData = [series.x, series.start.p50, series.start.p95, series.start.failures];
    if (!this.starts) {
      this.starts = new uPlot(
        {
          width: chartWidth(this.startBox),
          height: 220,
          series: [
            { label: series.labels.time },
            { label: series.labels.p50, stroke: COLORS[0], width: 2, spanGaps: true, scale: 's', points: { show: true, size: 5 } },
            { label: series.labels.p95, stroke: COLORS[2], width: 2, spanGaps: true, scale: 's', points: { show: true, size: 5 } },
            { label: series.labels.failures, stroke: COLORS[3], fill: 'rgba(207,34,46,0.15)', scale: 'n', paths: uPlot.paths.bars({ size: [0.6, 24] }) },
          ],
          axes: [{}, { scale: 's', label: series.labels.seconds }, { scale: 'n', side: 1, grid: { show: false } }],
          scales: { s: { range: (u, min, max) => [0, Math.max(1, max)] }, n: { range: (u, min, max) => [0, Math.max(3, max + 1)] } },
        },
        startData,
        this.startBox,
      );
    } else {
      this.starts.setData(startData);
    }
  }

  resize() {
    if (this.load) this.load.setSize({ width: chartWidth(this.loadBox), height: 220 });
    if (this.starts) this.starts.setSize({ width: chartWidth(this.startBox), height: 220 });
  }
}

async function refresh(root, charts) {
  if (document.hidden) return;
  // A form being filled in (or a button being pressed) is not replaced under the admin.
  if (root.contains(document.activeElement) && document.activeElement !== document.body) return;
  try {
    const response = await fetch(root.dataset.liveUrl, { credentials: 'same-origin', headers: { Accept: 'text/html' } });
    if (!response.ok) return;
    root.innerHTML = await response.text();
    charts.draw(readSeries());
    document.body.dataset.dashboardRefreshed = String(Date.now());
  } catch {
    // Offline for a moment: the next tick tries again.
  }
}

function main() {
  const root = document.getElementById('dashboard');
  if (!root) return;
  const charts = new Charts(document);
  charts.draw(readSeries());
  setInterval(() => refresh(root, charts), REFRESH_MS);
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', main);
else main();
