// placeholder: filled by the editor page's author
