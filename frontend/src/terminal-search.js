// The find bar of one terminal: a small box over the terminal's top right corner that
// searches the scrollback with xterm.js's search add-on, highlights every match, and says
// "3 of 12". Enter goes to the older match (output grows downwards, so what a student
// looks for is usually above), Shift+Enter to the newer one, Esc closes and gives the
// keyboard back to the shell.

import { gettext, interpolate } from './i18n.js';

// The add-on wants #RRGGBB colours; these match the terminal theme's yellow and blue.
const DECORATIONS = {
  matchBackground: '#5a4a12',
  matchOverviewRuler: '#d29922',
  activeMatchBackground: '#1f6feb',
  activeMatchColorOverviewRuler: '#58a6ff',
};

export class TerminalSearchBar {
  /**
   * @param {HTMLElement} container  the terminal pane (the bar is placed inside it)
   * @param {import('@xterm/addon-search').SearchAddon} addon
   * @param {() => void} onClose      gives focus back to the terminal
   */
  constructor(container, addon, onClose) {
    this.addon = addon;
    this.onClose = onClose;
    this.bar = el('div', 'terminal-search');
    this.bar.hidden = true;
    this.bar.setAttribute('role', 'search');
    this.input = el('input', 'terminal-search-input');
    this.input.type = 'search';
    this.input.placeholder = gettext('Find in the terminal');
    this.input.setAttribute('aria-label', gettext('Find in the terminal'));
    this.count = el('span', 'terminal-search-count');
    this.count.setAttribute('aria-live', 'polite');
    const older = button('↑', gettext('Older match (Enter)'), () => this.find(-1));
    const newer = button('↓', gettext('Newer match (Shift+Enter)'), () => this.find(1));
    const close = button('×', gettext('Close (Esc)'), () => this.close());
    this.bar.append(this.input, this.count, older, newer, close);
    container.append(this.bar);

    this._results = addon.onDidChangeResults(({ resultIndex, resultCount }) =>
      this._showCount(resultIndex, resultCount),
    );
    this.input.addEventListener('input', () => this.find(-1, true));
    this.input.addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter') {
        ev.preventDefault();
        this.find(ev.shiftKey ? 1 : -1);
      } else if (ev.key === 'Escape') {
        ev.preventDefault();
        this.close();
      }
    });
  }

  get isOpen() {
    return !this.bar.hidden;
  }

  /** Show the bar with `text` (the terminal's selection, if any) selected in the box. */
  open(text = '') {
    this.bar.hidden = false;
    if (text && !text.includes('\n')) this.input.value = text;
    this.input.focus();
    this.input.select();
    if (this.input.value) this.find(-1, true);
  }

  close() {
    if (this.bar.hidden) return;
    this.bar.hidden = true;
    this.addon.clearDecorations();
    this.count.textContent = '';
    this.onClose();
  }

  /**
   * Go to the next match upwards (-1) or downwards (1). `typing`: the text changed, so the
   * match under the cursor may grow instead of moving on. False when there is no match.
   */
  find(direction, typing = false) {
    const text = this.input.value;
    if (!text) {
      this.addon.clearDecorations();
      this.count.textContent = '';
      this.bar.dataset.found = '';
      return false;
    }
    const options = { decorations: DECORATIONS, incremental: typing };
    const found = direction < 0 ? this.addon.findPrevious(text, options) : this.addon.findNext(text, options);
    this.bar.dataset.found = found ? 'yes' : 'no';
    if (!found) this.count.textContent = gettext('No match');
    return found;
  }

  dispose() {
    this._results.dispose();
    this.bar.remove();
  }

  _showCount(index, total) {
    if (!total) {
      this.count.textContent = gettext('No match');
    } else if (index < 0) {
      // Past the add-on's highlight limit it stops counting exactly.
      this.count.textContent = interpolate(gettext('%(count)s+ matches'), { count: total });
    } else {
      this.count.textContent = interpolate(gettext('%(index)s of %(count)s'), {
        index: index + 1,
        count: total,
      });
    }
  }
}

function el(tag, className) {
  const e = document.createElement(tag);
  e.className = className;
  return e;
}

function button(label, title, onClick) {
  const b = el('button', 'terminal-search-button');
  b.type = 'button';
  b.textContent = label;
  b.title = title;
  b.setAttribute('aria-label', title);
  b.addEventListener('click', onClick);
  return b;
}
