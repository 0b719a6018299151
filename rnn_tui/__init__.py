"""rnn-tui: train a character-level LSTM in the terminal and watch it learn."""

__version__ = "0.1.0"
