#include "binding_core.h"
namespace terrafuse::bindings {
void InitTiles(nb::module_& m) {}
}
