"""The workbench's pages. Each module holds a plain `render_*()` function (testable with AppTest)
and renders itself when Streamlit runs the file as a page."""
