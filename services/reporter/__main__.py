"""``python -m services.reporter``: report documents (executive PDF, Excel workbook, industrial PDF)."""

from services.reporter.service import build
from shared.service import main

if __name__ == "__main__":
    main(build)
