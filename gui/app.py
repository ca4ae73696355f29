"""The application around the window: options from `emolive gui`, the event loop, and `--screenshot`.

`--screenshot` plays the file offline (as fast as the machine allows, every window evaluated),
so the picture is the same on any machine; once the engine has finished and the window has drawn
every estimate it received, the window is grabbed to a PNG and the program exits.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QTimer
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QApplication

from emolive.gui.cli import Interrupt
from emolive.gui.window import MainWindow


def run_app(args: argparse.Namespace, interrupt: Interrupt) -> int:
    """Show the window and run it; `interrupt` (installed before Qt was imported) closes it on Ctrl-C or
    SIGTERM, which Python sees on the redraw timer, and says the exit status. A signal before the loop
    runs ends it at once: the window it closed had been started all the same, the loop never left."""
    app = QApplication.instance() or QApplication(sys.argv[:1])
    window = build_window(args)
    interrupt.close = window.close
    if interrupt.code is not None:
        return interrupt.code
    window.show()
    if args.screenshot:
        window.pace_files = False
        # an interrupted run is no picture: its window closed, the finished run then fired all the same, and a
        # PNG of the cut-off run ("finished: …") was written, or not, as the race went, before exit 130
        window.run_finished.connect(lambda ok: QTimer.singleShot(
            0, lambda: None if interrupt.code is not None else save_and_quit(window, args.screenshot, ok)))
    QTimer.singleShot(0, lambda: app.quit() if interrupt.code is not None else window.start())
    try:
        code = app.exec()
    finally:
        interrupt.close = None
        window.close()  # after --screenshot: the engine's thread ends before we return; otherwise already closed
    return code if interrupt.code is None else interrupt.code


def build_window(args: argparse.Namespace) -> MainWindow:
    """A window whose controls show the options given on the command line."""
    window = MainWindow(connect=args.connect, stream_id=args.stream_id)
    controls = window.controls
    if args.source is not None:
        controls.source.add_choice(f"{args.source}", (args.source, None))
    elif args.device is not None:
        controls.source.add_choice(f"mic {args.device}", (None, args.device))
    if args.channel:
        controls.choose_channels(tuple(args.channel))
    controls.reconnect = args.reconnect
    controls.model.add_choice(args.model, args.model)
    controls.window.setValue(args.window)
    controls.hop.setValue(args.hop)
    return window


def screenshot_image(window: MainWindow) -> QImage:
    """The window's picture, with the model and the classes it shows as PNG text ("emolive model",
    "emolive classes"), so a committed screenshot can be checked against the model it claims to show."""
    image = window.grab().toImage()
    image.setText("emolive model", window.controls.model.currentText())
    image.setText("emolive classes", ",".join(window.bars.names))
    return image


def save_and_quit(window: MainWindow, path: str, ok: bool) -> None:
    """Runs after the finished signal, i.e. after every estimate signal before it was handled and drawn.
    The PNG is made in memory and replaces `path` by a rename (engine.bundle.replace_file): QImage.save
    emptied the file before failing on a name it had no format for, and a full disk left half a PNG."""
    from emolive.engine.bundle import BundleError, replace_file

    code = 0
    if not ok:
        print(f"emolive: error: {window.error}", file=sys.stderr)
        code = 1
    else:
        data = QByteArray()
        buffer = QBuffer(data)
        buffer.open(QIODevice.OpenModeFlag.WriteOnly)
        try:
            if not screenshot_image(window).save(buffer, "PNG"):
                raise BundleError(f"cannot make the screenshot for {path}")
            replace_file(Path(path), bytes(data))
        except BundleError as err:
            print(f"emolive: error: {err}", file=sys.stderr)
            code = 1
    QApplication.instance().exit(code)
