"""``penny-slm dashboard``: a local web page over the personality database (status, personality evolution, alerts,
and the learning controls' actions). ``data`` reads, ``server`` serves; ``page.html`` is the whole front end."""
