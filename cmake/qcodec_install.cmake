include(CMakePackageConfigHelpers)

install(DIRECTORY include/qcodec DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS qcodec EXPORT qcodecTargets)
install(EXPORT qcodecTargets NAMESPACE qcodec:: DESTINATION ${CMAKE_INSTALL_DATADIR}/cmake/qcodec)
# qcodec::io in its own export set: the package config adds it when the consumer's
# nlohmann_json is found (find_package(qcodec COMPONENTS io) requires it).
if(TARGET qcodec_io)
  set_target_properties(qcodec_io PROPERTIES EXPORT_NAME io)
  install(TARGETS qcodec_io EXPORT qcodecIoTargets)
  install(EXPORT qcodecIoTargets NAMESPACE qcodec:: DESTINATION ${CMAKE_INSTALL_DATADIR}/cmake/qcodec)
endif()

configure_package_config_file(cmake/qcodecConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/qcodecConfig.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_DATADIR}/cmake/qcodec)
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/qcodecConfigVersion.cmake
  COMPATIBILITY SameMinorVersion ARCH_INDEPENDENT)
install(FILES
  ${CMAKE_CURRENT_BINARY_DIR}/qcodecConfig.cmake
  ${CMAKE_CURRENT_BINARY_DIR}/qcodecConfigVersion.cmake
  DESTINATION ${CMAKE_INSTALL_DATADIR}/cmake/qcodec)
