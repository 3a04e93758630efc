"""The script Streamlit runs: ``streamlit run dashboards/entry/app.py`` (or ``contrail dashboard``).

It lives in its own folder on purpose: Streamlit treats a ``pages/`` folder beside its entry
script as a legacy multipage app, and ``dashboards/pages/`` holds Markdown pages, not scripts.
Everything else is in :mod:`dashboards.navigation`.
"""

from dashboards.navigation import main

main()
