"""What reads the results streams for people: `tail`, `render` (and its plots), the `demo` summary
and the web dashboard. Consumers read Redis; they never run the frame path.
"""
