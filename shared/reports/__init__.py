"""Reports (pure): the data a report rests on (:mod:`.data`) and the builders that turn it into
documents (executive and industrial PDF, Excel workbook). No I/O beyond returning bytes."""
