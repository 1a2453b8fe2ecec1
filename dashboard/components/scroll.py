"""Bring what a click opened into view: a rerun keeps the scroll where it was, so a head chosen on a map above
would update a view below the fold unseen."""

from __future__ import annotations

import json

import streamlit as st

PENDING = "_scroll_to"  # the CSS selector the next run scrolls to (set by a widget's callback)
COUNT = "_scroll_count"  # makes each scroll's script new, so a second click on the same view scrolls again


def scroll_on_next_run(selector: str) -> None:
    """From a widget's callback: the run it causes scrolls to the element `selector` finds (`scroll_if_asked`)."""
    st.session_state[PENDING] = selector
    st.session_state[COUNT] = st.session_state.get(COUNT, 0) + 1


def scroll_if_asked(selector: str) -> None:
    """Once the page has drawn the element `selector` finds: scroll it to the top of the screen, below the app's
    header, if this run was asked to (smoothly unless the visitor prefers reduced motion); otherwise nothing."""
    if st.session_state.get(PENDING) != selector:
        return
    del st.session_state[PENDING]
    st.html(f"""<script>/* {st.session_state.get(COUNT, 0)} */
(() => {{
  const target = document.querySelector({json.dumps(selector)});
  if (!target) return;
  target.style.scrollMarginTop = "4.5rem";
  const still = window.matchMedia("(prefers-reduced-motion: reduce)").matches;
  target.scrollIntoView({{block: "start", behavior: still ? "auto" : "smooth"}});
}})();
</script>""", unsafe_allow_javascript=True)
