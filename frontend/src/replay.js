// placeholder: filled by the replay page's author
