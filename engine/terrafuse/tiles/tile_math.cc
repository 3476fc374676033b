#include "terrafuse/tiles/tile_math.h"
