// Web-mercator XYZ tile math (placeholder: being written).
#pragma once
namespace terrafuse::tiles {}
