"""A throw-away Krita plugin that makes docs/img/krita-dock.png (run by make_screenshot.sh).

When the first window opens it loads a painting into a small document, shows the Protect for
Web dock, runs one protection through the dock's own Protect button, grabs the screen and the
dock, and quits. Settings come from FIXATIVE_SHOT_* environment variables.
"""

import os

from krita import Krita
from PyQt5.QtCore import QTimer
from PyQt5.QtGui import QImage
from PyQt5.QtWidgets import QApplication, QDockWidget

OUT = os.environ.get("FIXATIVE_SHOT_OUT", "/tmp")
ART = os.environ.get("FIXATIVE_SHOT_ART", "")
LOG = os.path.join(OUT, "shot.log")
state = {"ticks": 0}


def log(text):
    with open(LOG, "a") as handle:
        handle.write(text + "\n")


def find_dock(window):
    for dock in window.qwindow().findChildren(QDockWidget):
        if dock.objectName() == "fixative_protect_dock":
            return dock
    return None


def prepare():
    try:
        app = Krita.instance()
        window = app.activeWindow()
        image = QImage(ART).scaled(288, 180).convertToFormat(QImage.Format_ARGB32)
        document = app.createDocument(image.width(), image.height(), "Starry Night", "RGBA", "U8",
                                      "", 300.0)
        node = document.createNode("Painting", "paintlayer")
        document.rootNode().addChildNode(node, None)
        data = image.constBits().asstring(image.sizeInBytes())  # B,G,R,A like Krita's U8
        node.setPixelData(data, 0, 0, image.width(), image.height())
        window.addView(document)
        document.setActiveNode(node)
        document.refreshProjection()
        dock = find_dock(window)
        if dock is None:
            log("no dock found")
            return
        dock.show()
        dock.raise_()
        state["dock"] = dock
        panel = dock.widget()
        panel.quality.setCurrentIndex(panel.quality.findData("fast"))
        state["panel"] = panel
        QTimer.singleShot(6000, start_protect)
    except Exception as exc:  # noqa: BLE001 - a screenshot helper logs and gives up
        log(f"prepare failed: {exc!r}")


def start_protect():
    panel = state["panel"]
    panel.protect_button.click()
    log(f"protect clicked: {panel.status.text()}")
    state["timer"] = timer = QTimer()
    timer.timeout.connect(check)
    timer.start(500)


def check():
    panel = state["panel"]
    state["ticks"] += 1
    job = panel.job
    if state["ticks"] == 20:  # mid-run picture: progress bar and stage text
        grab("running")
    if job is None or job.finished or state["ticks"] > 1200:
        state["timer"].stop()
        log(f"finished: {job and job.state} {job and job.error}")
        QTimer.singleShot(1500, final)


def grab(name):
    screen = QApplication.primaryScreen()
    screen.grabWindow(0).save(os.path.join(OUT, f"screen-{name}.png"))
    state["dock"].grab().save(os.path.join(OUT, f"dock-{name}.png"))


def final():
    grab("done")
    with open(os.path.join(OUT, "done"), "w") as handle:
        handle.write("ok")
    for document in Krita.instance().documents():
        document.setModified(False)
    QApplication.quit()


def on_window():
    QTimer.singleShot(4000, prepare)


Krita.instance().notifier().windowCreated.connect(on_window)
