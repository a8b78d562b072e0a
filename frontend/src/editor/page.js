// The editor page of one unit (a course's, a module's or a lab's files): an editor per file,
// steps added and removed, a live preview, Save with the disk's digest as its base, and a
// banner when the files change on disk meanwhile. Nothing typed is ever thrown away by the
// page: a refused save keeps the text where it is.
import { createEditor } from './codemirror.js';
import { request } from '../http.js';

const PREVIEW_DELAY_MS = 350;
const DISK_POLL_MS = 15000;
const STEP_SLUG = /^[a-z0-9][a-z0-9-]*$/;

export class EditorPage {
  constructor(root, data, strings) {
    this.root = root;
    this.data = data;
    this.t = strings;
    this.digest = data.digest;
    /** path → {editor, existed, removed} */
    this.files = new Map();
    this.saving = false;
    this.status = root.querySelector('[data-role="status"]');
    this.alert = root.querySelector('[data-role="alert"]');
    this.message = root.querySelector('[data-role="message"]');
  }

  start() {
    for (const el of this.root.querySelectorAll('.ed-file[data-file]')) {
      if (el.dataset.file) this.mount(el);
    }
    for (const card of this.root.querySelectorAll('.ed-step[data-stem]')) this.wireStep(card);
    this.wireLesson();
    this.root.querySelector('[data-action="save"]').addEventListener('click', () => this.save());
    const addStep = this.root.querySelector('[data-role="add-step"]');
    if (addStep) addStep.addEventListener('submit', (e) => this.onAddStep(e));
    window.addEventListener('beforeunload', (e) => {
      if (this.dirty()) {
        e.preventDefault();
        e.returnValue = this.t.leave;
      }
    });
    document.addEventListener('keydown', (e) => {
      if ((e.ctrlKey || e.metaKey) && e.key === 's') {
        e.preventDefault();
        this.save();
      }
    });
    setInterval(() => this.pollDisk(), DISK_POLL_MS);
    this.showStatus();
  }

  mount(el, doc) {
    const path = el.dataset.file;
    const text = doc !== undefined ? doc : this.data.files[path] ?? '';
    const existed = el.dataset.exists === 'true';
    const code = el.querySelector('[data-role="code"]');
    const onChange = (value) => {
      this.showStatus();
      if (el._onText) el._onText(value);
    };
    const editor = createEditor(code, text, el.dataset.lang || 'text', onChange, path);
    // A new file starts "unchanged" only when empty: a new step's template text counts.
    if (!existed) editor.initial = '';
    this.files.set(path, { editor, existed, removed: false, el });
    return editor;
  }

  /** {path: text | null} of what differs from the disk as loaded. */
  changes() {
    const out = {};
    for (const [path, f] of this.files) {
      if (f.removed) {
        if (f.existed) out[path] = null;
        continue;
      }
      const text = f.editor.text();
      if (f.existed ? text !== f.editor.initial : text !== '') out[path] = text;
    }
    return out;
  }

  dirty() {
    return Object.keys(this.changes()).length > 0;
  }

  showStatus(text, kind) {
    if (text === undefined) {
      text = this.dirty() ? this.t.unsaved : '';
      kind = this.dirty() ? 'is-dirty' : '';
    }
    this.status.textContent = text;
    this.status.className = `ed-status ${kind || ''}`;
  }

  showAlert(message, actions = []) {
    this.alert.replaceChildren();
    if (!message) {
      this.alert.hidden = true;
      return;
    }
    const p = document.createElement('p');
    p.textContent = message;
    this.alert.append(p);
    for (const action of actions) this.alert.append(action);
    this.alert.hidden = false;
  }

  button(label, onClick, cls = 'btn') {
    const b = document.createElement('button');
    b.type = 'button';
    b.className = cls;
    b.textContent = label;
    b.addEventListener('click', onClick);
    return b;
  }

  link(label, href) {
    const a = document.createElement('a');
    a.className = 'btn btn-ghost';
    a.href = href;
    a.target = '_blank';
    a.rel = 'noopener';
    a.textContent = label;
    return a;
  }

  async save(base) {
    if (this.saving) return;
    const files = this.changes();
    if (!Object.keys(files).length) {
      this.showStatus(this.t.no_changes);
      return;
    }
    this.saving = true;
    this.showStatus(this.t.saving, 'is-busy');
    const saveButton = this.root.querySelector('[data-action="save"]');
    saveButton.disabled = true;
    try {
      const body = {
        path: this.data.path,
        base_digest: base || this.digest,
        files,
        message: this.message ? this.message.value : '',
      };
      const res = await request('POST', this.data.urls.save, body, this.t.network);
      this.saved(res.digest);
      this.showAlert('');
      this.showStatus(res.message || this.t.saved, 'is-saved');
    } catch (err) {
      this.showStatus('');
      if (err.code === 'conflict') {
        const overwrite = () => this.save(err.data.disk_digest);
        this.showAlert(err.message, [
          this.button(this.t.overwrite, overwrite, 'btn btn-danger'),
          this.link(this.t.show_revisions, this.data.urls.revisions),
        ]);
      } else {
        this.showAlert(err.message);
      }
    } finally {
      this.saving = false;
      saveButton.disabled = false;
    }
  }

  /** After a save: what is in the editors is now what is on disk. */
  saved(digest) {
    this.digest = digest;
    for (const [path, f] of [...this.files]) {
      if (f.removed) {
        this.files.delete(path);
        continue;
      }
      f.editor.initial = f.editor.text();
      if (!f.existed && f.editor.initial !== '') {
        f.existed = true;
        f.el.dataset.exists = 'true';
        const note = f.el.querySelector('.ed-new');
        if (note) note.remove();
      }
    }
    if (this.message) this.message.value = '';
  }

  async pollDisk() {
    if (this.saving || document.hidden) return;
    try {
      const res = await request('GET', this.data.urls.state, null, this.t.network);
      if (res.digest !== this.digest && !this.saving) {
        this.showAlert(this.t.disk_changed, [
          this.button(this.t.reload, () => {
            this.files.clear(); // nothing to warn about: the user chose to reload
            window.location.reload();
          }),
          this.link(this.t.show_revisions, this.data.urls.revisions),
        ]);
      }
    } catch {
      // A missed poll is retried at the next one.
    }
  }

  // -- previews -------------------------------------------------------------------------

  previewer(body, extra, render) {
    let timer = null;
    let seq = 0;
    const run = async (text) => {
      const mine = ++seq;
      try {
        const res = await request('POST', this.data.urls.preview, { text, ...extra }, this.t.network);
        if (mine === seq) render(res);
      } catch {
        if (mine === seq) body.textContent = this.t.preview_failed;
      }
    };
    return (text) => {
      clearTimeout(timer);
      timer = setTimeout(() => run(text), PREVIEW_DELAY_MS);
    };
  }

  wireLesson() {
    const el = this.root.querySelector('.ed-file[data-part="lesson"]');
    const pane = this.root.querySelector('[data-role="lesson-preview"] [data-role="preview-body"]');
    if (!el || !pane) return;
    const extra = { kind: 'lesson', course: this.data.course, module_dir: this.data.module_dir };
    const update = this.previewer(pane, extra, (res) => {
      pane.innerHTML = res.html; // sanitised by the server (nh3), as on the student's page
    });
    el._onText = update;
    update(this.files.get(el.dataset.file).editor.text());
  }

  wireStep(card) {
    const md = card.querySelector('.ed-file[data-part="md"]');
    const title = card.querySelector('[data-role="preview-title"]');
    const body = card.querySelector('[data-role="preview-body"]');
    const problem = card.querySelector('[data-role="preview-problem"]');
    const update = this.previewer(body, { kind: 'step' }, (res) => {
      title.textContent = res.title;
      body.innerHTML = res.html; // sanitised by the server (nh3)
      problem.textContent = res.problem || '';
      problem.hidden = !res.problem;
    });
    md._onText = update;
    update(this.files.get(md.dataset.file).editor.text());
    card.querySelector('[data-action="remove-step"]').addEventListener('click', () => {
      if (!window.confirm(this.t.remove_step)) return;
      for (const el of card.querySelectorAll('.ed-file[data-file]')) {
        const f = this.files.get(el.dataset.file);
        if (f) f.removed = true;
      }
      card.hidden = true;
      this.showStatus();
    });
    if (this.onStepWired) this.onStepWired(card);
  }

  // -- new steps ------------------------------------------------------------------------

  onAddStep(event) {
    event.preventDefault();
    const input = event.target.querySelector('[data-role="new-step-slug"]');
    const slug = input.value.trim();
    if (!STEP_SLUG.test(slug)) {
      this.showAlert(this.t.bad_slug);
      return;
    }
    const number = this.nextStepNumber();
    const stem = `${String(number).padStart(2, '0')}-${slug}`;
    if (this.files.has(`steps/${stem}.md`)) return;
    const card = document.getElementById('ed-step-template').content.firstElementChild.cloneNode(true);
    card.dataset.stem = stem;
    for (const el of card.querySelectorAll('[data-role="step-number"]')) el.textContent = String(number);
    card.querySelector('[data-role="step-stem"]').textContent = `steps/${stem}.md`;
    const langs = { md: 'markdown', check: 'shell', solve: 'shell' };
    for (const el of card.querySelectorAll('.ed-file[data-part]')) {
      const part = el.dataset.part;
      el.dataset.file = `steps/${stem}.${part}`;
      el.dataset.lang = langs[part];
      el.dataset.exists = 'false';
      el.querySelector('[data-role="file-name"]').textContent = el.dataset.file;
    }
    this.root.querySelector('[data-role="steps"]').append(card);
    for (const el of card.querySelectorAll('.ed-file[data-file]')) {
      // The loader's two title lines: the title, then the English one as a comment.
      const starter =
        el.dataset.part === 'md' ? `# ${this.t.step_title}\n<!-- title_en: New step -->\n\n` : '';
      this.mount(el, starter);
    }
    this.wireStep(card);
    input.value = '';
    this.showAlert('');
    this.showStatus();
    card.scrollIntoView({ behavior: 'smooth', block: 'start' });
  }

  nextStepNumber() {
    let max = 0;
    for (const [path, f] of this.files) {
      const m = path.match(/^steps\/(\d+)-/);
      if (m && !f.removed) max = Math.max(max, Number(m[1]));
    }
    return max + 1;
  }
}
