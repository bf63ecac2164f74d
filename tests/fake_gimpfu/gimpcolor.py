"""Stand-in for GIMP 2.10's gimpcolor: only the RGB type gimpfu refers to."""


class RGB(object):
    def __init__(self, r=0.0, g=0.0, b=0.0, a=1.0):
        self.r, self.g, self.b, self.a = r, g, b, a
