// The lab page's layout controls, apart from the session: the phone's two tabs
// (instructions | terminal) and the full-window terminal. No API calls, no session state;
// lab.js tells it when a terminal appears (showTerminal) and asks it to refit.
//
// DOM contract (templates/courses/lab.html):
//   <div class="lab-layout" data-view="steps|terminal">
//     <div class="lab-view-tabs" role="tablist">       (optional; shown by CSS on narrow screens)
//       <button role="tab" data-view="steps">…</button> <button role="tab" data-view="terminal">…</button>
//     </div>
//     <section id="lab-app">… <button data-action="fullscreen" aria-pressed="false">…</button> …</section>
//     <aside class="lab-steps">…</aside>
//   </div>
// Full window: #lab-app.is-fullscreen and <html class="lab-fullscreen"> (no page scroll).
// Esc leaves, except inside the terminal, where Esc belongs to the shell (vim, less).

/** The width below which the page shows tabs instead of two columns (app.css agrees). */
export const PHONE_QUERY = '(max-width: 720px)';

export class LabView {
  /**
   * @param {HTMLElement} root #lab-app
   * @param {{onLayout?: () => void}} options onLayout: the terminal's space changed (refit)
   */
  constructor(root, { onLayout = () => {} } = {}) {
    this.root = root;
    this.layout = root.closest('.lab-layout');
    this.onLayout = onLayout;
    this.tabs = this.layout ? [...this.layout.querySelectorAll('.lab-view-tabs [data-view]')] : [];
    this.fullscreenButton = root.querySelector('[data-action="fullscreen"]');
    this.fullscreen = false;

    for (const tab of this.tabs) {
      tab.addEventListener('click', () => this.show(tab.dataset.view, { focus: false }));
      tab.addEventListener('keydown', (e) => this._arrowKeys(e));
    }
    if (this.fullscreenButton) {
      this.fullscreenButton.addEventListener('click', (e) => {
        e.preventDefault();
        this.setFullscreen(!this.fullscreen);
      });
    }
    document.addEventListener('keydown', (e) => {
      if (e.key !== 'Escape' || !this.fullscreen) return;
      if (e.target instanceof Element && e.target.closest('.terminal-area')) return;
      this.setFullscreen(false);
    });
    this.show(this.current(), { focus: false, quiet: true });
  }

  /** True when the page is narrow enough for the tabs. */
  get narrow() {
    return typeof window.matchMedia === 'function' && window.matchMedia(PHONE_QUERY).matches;
  }

  current() {
    return (this.layout && this.layout.dataset.view) || 'steps';
  }

  /** Show "steps" or "terminal" (on wide screens both stay visible: only the state changes). */
  show(view, { focus = false, quiet = false } = {}) {
    if (!this.layout) return;
    this.layout.dataset.view = view;
    for (const tab of this.tabs) {
      const on = tab.dataset.view === view;
      tab.setAttribute('aria-selected', on ? 'true' : 'false');
      tab.tabIndex = on ? 0 : -1;
      if (on && focus) tab.focus();
    }
    if (!quiet) this._changed();
  }

  /** A terminal has something to show (it opened, or a command was sent to it). */
  showTerminal() {
    if (this.narrow && this.current() !== 'terminal') this.show('terminal');
  }

  /** Offer the full-window toggle only when there is a terminal to fill it with. */
  setAvailable(available) {
    if (!this.fullscreenButton) return;
    this.fullscreenButton.hidden = !available;
    if (!available && this.fullscreen) this.setFullscreen(false);
  }

  setFullscreen(on) {
    this.fullscreen = !!on;
    this.root.classList.toggle('is-fullscreen', this.fullscreen);
    document.documentElement.classList.toggle('lab-fullscreen', this.fullscreen);
    if (this.fullscreenButton) {
      this.fullscreenButton.setAttribute('aria-pressed', this.fullscreen ? 'true' : 'false');
      this.fullscreenButton.classList.toggle('is-active', this.fullscreen);
    }
    if (this.fullscreen) this.show('terminal', { quiet: true });
    this._changed();
  }

  _changed() {
    // terminal.js refits on its container's ResizeObserver; the window event is for anything
    // else listening, and onLayout refits the visible terminal once the layout has settled.
    requestAnimationFrame(() => {
      window.dispatchEvent(new Event('resize'));
      this.onLayout();
    });
  }

  _arrowKeys(e) {
    if (e.key !== 'ArrowLeft' && e.key !== 'ArrowRight') return;
    e.preventDefault();
    const i = this.tabs.indexOf(e.currentTarget);
    const next = this.tabs[(i + (e.key === 'ArrowRight' ? 1 : this.tabs.length - 1)) % this.tabs.length];
    this.show(next.dataset.view, { focus: true });
  }
}
