"""The emolive desktop window: it reads estimates, it never computes them.

One module, one job:
- cli          the `emolive gui` subcommand (an `emolive.commands` entry point, so engine never imports gui)
- app          the QApplication around the window, and `--screenshot`
- window       the main window: wires a feed to the history, the plots and the controls
- feed         what the window needs from a source of estimates (signals, start, stop)
- engine_feed  the engine in-process, on a worker thread, estimates out through queued signals
- zmq_feed     a running `emolive stream`, through a SUB socket read without blocking
- level        the input level tap on the engine's audio source (RMS dBFS, one number per block)
- history      ring buffers the feeds append to; the 50 ms redraw reads them
- plots        traces, valence-activation plane, class bars (pyqtgraph)
- meters       level meter, speech light, status line
- controls     start/stop, source, model, window/hop, CSV recording
- gui_thread_gc  cyclic garbage collected on the GUI thread only (Qt objects die where they were made)
"""
