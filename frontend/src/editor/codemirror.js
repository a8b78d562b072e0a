// One CodeMirror 6 editor per file, with the language its name calls for (the server's
// apps/authoring/layout.py `language()` names it: markdown, shell, yaml, dockerfile, text).
import { EditorView, basicSetup } from 'codemirror';
import { markdown } from '@codemirror/lang-markdown';
import { StreamLanguage } from '@codemirror/language';
import { shell } from '@codemirror/legacy-modes/mode/shell';
import { yaml } from '@codemirror/legacy-modes/mode/yaml';
import { dockerFile } from '@codemirror/legacy-modes/mode/dockerfile';

const LANGUAGES = {
  markdown: () => markdown(),
  shell: () => StreamLanguage.define(shell),
  yaml: () => StreamLanguage.define(yaml),
  dockerfile: () => StreamLanguage.define(dockerFile),
  text: () => [],
};

const theme = EditorView.theme({
  '&': { fontSize: '0.88rem', backgroundColor: 'var(--surface, #fff)' },
  '.cm-scroller': { fontFamily: 'var(--font-mono, monospace)', maxHeight: '32rem' },
  '.cm-content': { minHeight: '3.5rem' },
});

/**
 * An editor in `parent` holding `doc`; `onChange(text)` after each edit.
 * Returns {view, text(), initial}: `initial` is the document as CodeMirror holds it (line
 * breaks normalised), so an untouched file is never taken for an edited one.
 */
export function createEditor(parent, doc, lang, onChange, label) {
  const view = new EditorView({
    doc,
    parent,
    extensions: [
      basicSetup,
      EditorView.lineWrapping,
      theme,
      (LANGUAGES[lang] || LANGUAGES.text)(),
      EditorView.contentAttributes.of({ 'aria-label': label || '' }),
      EditorView.updateListener.of((update) => {
        if (update.docChanged) onChange(update.state.doc.toString());
      }),
    ],
  });
  const text = () => view.state.doc.toString();
  return { view, text, initial: text() };
}
