// The student's side of watching: a notice on the lab page naming who watches their
// terminal, with the answers to a request to type (docs/terminal-protocol.md).

import { MessageType } from './protocol.js';
import { gettext, interpolate } from './i18n.js';

export class WatchersNotice {
  /** @param {HTMLElement} el  the notice's element (hidden while nobody watches) */
  constructor(el) {
    this.el = el;
    this.send = () => {};
    el.addEventListener('click', (ev) => {
      const button = ev.target.closest('button[data-watch-answer]');
      if (!button) return;
      button.disabled = true;
      this.send({ type: button.dataset.watchAnswer, watch: Number(button.dataset.watch) });
    });
  }

  /**
   * @param {Array<{id:number,name:string,tab:number,asking:boolean,typing:boolean}>} watchers
   * @param {(msg: object) => void} send  sends a control message on the events socket
   */
  update(watchers, send) {
    this.send = send;
    this.el.replaceChildren(...watchers.map((w) => this._line(w)));
    this.el.hidden = watchers.length === 0;
    this.el.dataset.count = String(watchers.length);
  }

  clear() {
    this.update([], () => {});
  }

  _line(w) {
    const line = document.createElement('div');
    line.className = 'watcher';
    line.dataset.watch = String(w.id);
    line.dataset.typing = w.typing ? 'yes' : 'no';
    const text = document.createElement('span');
    const who = { name: w.name, tab: w.tab };
    if (w.typing) {
      text.textContent = interpolate(gettext('%(name)s is watching terminal %(tab)s and may type in it.'), who);
    } else if (w.asking) {
      text.textContent = interpolate(gettext('%(name)s is watching terminal %(tab)s and asks to type in it.'), who);
    } else {
      text.textContent = interpolate(gettext('%(name)s is watching terminal %(tab)s.'), who);
    }
    line.append(text);
    if (w.asking) {
      line.append(
        this._button(gettext('Let them type'), MessageType.WATCH_ALLOW, w.id, 'btn btn-primary'),
        this._button(gettext('No'), MessageType.WATCH_REFUSE, w.id, 'btn'),
      );
    } else if (w.typing) {
      line.append(this._button(gettext('Take the keyboard back'), MessageType.WATCH_TAKE_BACK, w.id, 'btn btn-danger'));
    }
    return line;
  }

  _button(label, answer, id, cls) {
    const b = document.createElement('button');
    b.type = 'button';
    b.className = cls;
    b.textContent = label;
    b.dataset.watchAnswer = answer;
    b.dataset.watch = String(id);
    return b;
  }
}
