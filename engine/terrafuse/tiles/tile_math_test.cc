#include "terrafuse/tiles/tile_math.h"
#include <gtest/gtest.h>
TEST(TileMathTest, Placeholder) {}
