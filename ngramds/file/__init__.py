"""The on-disk format of spec/FORMAT.md: layout and header codec (``format``, ``header``),
atomic writes and the build's temporaries (``writer``, ``temporaries``, ``paths``), the
zero-copy reader (``reader``), full verification (``verify``) and summaries (``summary``)."""
