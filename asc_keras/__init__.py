"""asc-keras: acoustic scene classification with spectrogram processing strategies."""
