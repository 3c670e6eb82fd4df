"""Score reports: the versioned schema, the evidence manifest and every output format.

Import from the submodules (``report.schema``, ``report.render_html`` ...): re-exporting
``render_html`` here would shadow the module of the same name.
"""
