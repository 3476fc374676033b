import fused


@fused.cache
def slow_squares(count):
    import time

    import pandas as pd

    time.sleep(0.2)  # stands in for a slow read; cached after the first call
    return pd.DataFrame({"i": range(count), "square": [i * i for i in range(count)]})
