@fused.udf
def udf(name: str = "world", n: int = 3):
    import pandas as pd
    return pd.DataFrame({"hello": [name] * n})
