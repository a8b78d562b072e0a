"""The instructors' lab editor: courses, modules, lessons, labs and steps edited in the
browser, with the files under CONTENT_DIR as the one source of truth.

A reading order: ``units.py`` (what one editor page edits: a course's, a module's or a lab's
files) → ``store.py`` (every write: checked by the loader in a temporary copy, swapped in
file by file, the course re-synced into the database in one transaction) → ``editing.py``
(load, save with the disk's digest as the base, restore) and ``history.py`` (revisions) →
``importing.py`` / ``archive.py`` (zip in and out) → ``views.py`` (pages) and
``actions.py`` (the page's JSON: save, preview, Try it, Validate) → ``validation.py`` (the
validator run in the background, polled through a ``Validation`` row).

Who may edit: ``permissions.py`` (admins everything; instructors the courses they own or
were granted, ``CourseRole``). The browser side is ``frontend/src/editor.js``.
"""
