"""A test runner running async tests (unittest's IsolatedAsyncioTestCase: a loop per test)."""

import asyncio
import unittest


class AsyncTests(unittest.IsolatedAsyncioTestCase):
    async def test_sleep(self) -> None:
        await asyncio.sleep(0.01)

    async def test_gather(self) -> None:
        self.assertEqual(await asyncio.gather(asyncio.sleep(0, 1), asyncio.sleep(0, 2)), [1, 2])

    async def test_fails(self) -> None:
        self.assertEqual(1 + 1, 3)


if __name__ == "__main__":
    unittest.main()
