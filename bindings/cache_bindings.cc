#include "binding_core.h"
namespace terrafuse::bindings {
void InitCache(nb::module_& m) {}
}
