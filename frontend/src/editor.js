// The instructors' lab editor (templates/authoring/*.html): CodeMirror 6 editors for a
// unit's files, live previews rendered by the server exactly as the student's pages, Save
// with conflict detection, Try it in the author's own sandbox, Validate, and folder import.
// Its words come translated from the page (#editor-strings), not from literals here.
import { EditorPage } from './editor/page.js';
import { wireImport } from './editor/importer.js';
import { Trying } from './editor/trying.js';
import { Validating } from './editor/validate.js';

function json(id) {
  const el = document.getElementById(id);
  return el ? JSON.parse(el.textContent) : null;
}

function main() {
  const strings = json('editor-strings') || {};
  const root = document.getElementById('editor-app');
  const data = json('editor-data');
  if (root && data) {
    const page = new EditorPage(root, data, strings);
    const trying = new Trying(page);
    page.onStepWired = (card) => trying.wire(card);
    page.start();
    trying.start();
    new Validating(page).start();
  }
  const importForm = document.querySelector('form[data-role="import"]');
  if (importForm) wireImport(importForm, strings);
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', main);
else main();
