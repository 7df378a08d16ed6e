# Runs `gradc step MODEL --params DATA.params.safetensors --inputs
# DATA.inputs.safetensors --steps 5 -o OUT [--backend BACKEND] [ARGS]`, where
# ARGS come from a `# cli: ARGS` line of MODEL, then
# `compare_optim OUT DATA.expected.safetensors`. Used by the optim.torch.*
# tests (cmake -P).
file(REMOVE ${OUT})
file(STRINGS ${MODEL} cli_lines REGEX "^# cli:")
set(extra)
foreach(line ${cli_lines})
  string(REGEX REPLACE "^# cli:[ ]*" "" line "${line}")
  separate_arguments(args UNIX_COMMAND "${line}")
  list(APPEND extra ${args})
endforeach()
set(backend_args)
if(BACKEND)
  set(backend_args --backend ${BACKEND})
endif()
set(cmd ${GRADC} step ${MODEL} --params ${DATA}.params.safetensors --inputs ${DATA}.inputs.safetensors
    --steps 5 -o ${OUT} ${backend_args} ${extra})
string(REPLACE ";" " " shown "${cmd}")
message(STATUS "${shown}")
execute_process(COMMAND ${cmd} RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "gradc step failed with status ${rc}")
endif()
execute_process(COMMAND ${COMPARE} ${OUT} ${DATA}.expected.safetensors RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "the output of gradc step disagrees with torch.optim (status ${rc})")
endif()
