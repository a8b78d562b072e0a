// Importing a picked folder: the browser packs it into a zip (the folder's name on top, as
// webkitRelativePath gives it) and puts that zip in the form's archive field, so the server
// receives one zip and checks it like any other.
import { makeZip } from './zip.js';

export function wireImport(form, t) {
  const folder = form.querySelector('[data-role="folder"]');
  const archive = form.querySelector('input[type="file"][name="archive"]');
  const status = form.querySelector('[data-role="folder-status"]');
  if (!folder || !archive || typeof DataTransfer === 'undefined') {
    if (folder) folder.closest('form').querySelector('label[for="ed-folder"]').hidden = true;
    if (folder) folder.hidden = true;
    return;
  }
  folder.addEventListener('change', async () => {
    const files = [...folder.files];
    if (!files.length) {
      status.textContent = t.folder_empty;
      return;
    }
    status.textContent = t.zipping;
    const entries = [];
    for (const file of files) {
      const name = file.webkitRelativePath || file.name;
      entries.push({ name, bytes: new Uint8Array(await file.arrayBuffer()) });
    }
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const top = (entries[0].name.split('/')[0] || 'folder').toLowerCase();
    const zip = new File([makeZip(entries)], `${top}.zip`, { type: 'application/zip' });
    const transfer = new DataTransfer();
    transfer.items.add(zip);
    archive.files = transfer.files;
    archive.required = false;
    status.textContent = `${top}/ · ${entries.length}`;
  });
}
