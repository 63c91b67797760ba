"""The main window, its ``Controller``, what a job's events do to the window, the meters."""
