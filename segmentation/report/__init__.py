"""The segment report: its saved inputs, the pictures (pure functions returning figures), the HTML and Markdown, and the stage that rebuilds it."""
