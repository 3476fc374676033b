@fused.udf
def udf(count: int = 5):
    from utils import slow_squares

    return slow_squares(count)
