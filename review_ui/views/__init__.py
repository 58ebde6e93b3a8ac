"""The workbench's pages. Each module holds a plain `render_*()` function (testable with AppTest)
and renders itself when Streamlit runs the file as a page. The folder is not called `pages/`:
Streamlit would then discover it on its own and, for an address like `/editor`, run the page
file directly, without `app.py` (no navigation, no sign-in check of the app)."""
